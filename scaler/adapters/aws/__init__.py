"""AWS adapters: ASGs as pools (aiobotocore), Spot prices, dry-run. See docs/aws.md.

- :mod:`.asg`: a described ASG -> :class:`~scaler.core.model.PoolSpec` (pure).
- :mod:`.parse`: scaling activities, Spot price history, instance types, providerIDs (pure).
- :mod:`.errors`: botocore errors -> the ports' domain errors.
- :mod:`.fleet`: :class:`AwsFleet`, the Fleet and PriceSource ports over aiobotocore.
- :mod:`.dryrun`: :class:`DryRunFleet`, reads through and logs writes.
"""

from scaler.adapters.aws.dryrun import DryRunFleet
from scaler.adapters.aws.errors import AtMinSize
from scaler.adapters.aws.fleet import AwsFleet, Discovery
from scaler.adapters.aws.parse import parse_provider_id

__all__ = ["AtMinSize", "AwsFleet", "Discovery", "DryRunFleet", "parse_provider_id"]
