"""On-demand prices from the AWS Price List API (``pricing:GetProducts``), for any region.

The bundled catalog's prices are us-east-1's; a cluster elsewhere pays other prices
(eu-west-1's m5.large is about 11% dearer). :class:`OnDemandPriceList` reads the region's
Linux, shared-tenancy, no-preinstalled-software, ``capacitystatus=Used`` products, the same
filters Karpenter's pricing provider uses, in pages of 100, and keeps the hourly USD price of
each instance type. A failed refresh (throttled after botocore's retries, access denied, a
network error, an answer without prices) keeps the last good prices; before the first good one
the catalog's stay in force, and the log says which (``aws.on_demand_prices_failed``).

The API has endpoints in three regions only, whatever region the prices are for:
:func:`pricing_endpoint_region` picks the nearest. The endpoint follows the standard chain
(``AWS_ENDPOINT_URL_PRICING`` or ``AWS_ENDPOINT_URL``), as every other client here.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from scaler.adapters.aws.errors import translated
from scaler.adapters.aws.lean import aws_session
from scaler.ports import PortError

log = structlog.get_logger("scaler.adapters.aws")

PRICING_ENDPOINT_REGIONS: Final = ("us-east-1", "eu-central-1", "ap-south-1")
"""Where the Price List Query API answers (its endpoints; any region's prices from each)."""
PAGE_SIZE: Final = 100
"""GetProducts' maximum MaxResults."""
MAX_PAGES: Final = 200
"""A region sells about 1,000 Linux/shared types: 10 pages. A paging loop that never ends
(a server that always answers a NextToken) stops here and the refresh fails."""


def pricing_endpoint_region(region: str) -> str:
    """The Price List endpoint nearest ``region``: Europe and Africa/Middle East to
    Frankfurt, Asia-Pacific to Mumbai, the rest to N. Virginia."""
    if region.startswith(("eu-", "me-", "af-", "il-")):
        return "eu-central-1"
    if region.startswith("ap-"):
        return "ap-south-1"
    return "us-east-1"


def product_filters(region: str) -> list[dict[str, str]]:
    """GetProducts filters for what a Kubernetes node on EC2 costs: Linux, shared tenancy,
    no licensed software, a running instance (``Used``, not a reservation's ``Unused`` line)."""
    terms = {
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def prices_from_price_list(
    items: Iterable[Any], region: str
) -> tuple[dict[str, float], list[str]]:
    """USD/hour by instance type from GetProducts' ``PriceList`` (each item a JSON string
    on the wire; botocore hands it over as text or, where it decodes it, as a dict),
    and the items rejected, each with why (unreadable, another region, no positive hourly
    USD price). A type listed twice keeps its highest price: never under-estimate a cost."""
    out: dict[str, float] = {}
    rejected: list[str] = []
    for n, text in enumerate(items):
        try:
            item = json.loads(text) if isinstance(text, str | bytes) else text
            attrs = item["product"]["attributes"]
            name = str(attrs["instanceType"])
            terms = item["terms"]["OnDemand"]
        except (TypeError, ValueError, KeyError) as e:
            rejected.append(f"PriceList[{n}]: unreadable ({type(e).__name__}: {e})")
            continue
        if attrs.get("regionCode", region) != region:
            rejected.append(f"{name}: for region {attrs.get('regionCode')!r}, not {region}")
            continue
        price = _hourly_usd(terms)
        if price is None:
            rejected.append(f"{name}: no positive hourly USD price")
            continue
        out[name] = max(price, out.get(name, 0.0))
    return out, rejected


def _hourly_usd(terms: Any) -> float | None:
    found: list[float] = []
    if not isinstance(terms, Mapping):
        return None
    for term in terms.values():
        dims = term.get("priceDimensions") if isinstance(term, Mapping) else None
        for dim in (dims or {}).values() if isinstance(dims, Mapping) else ():
            if not isinstance(dim, Mapping) or dim.get("unit") not in ("Hrs", None):
                continue
            try:
                usd = float(dim["pricePerUnit"]["USD"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(usd) and usd > 0:
                found.append(usd)
    return max(found) if found else None


@dataclass
class OnDemandPriceList:
    """On-demand USD/hour per instance type for ``region``, from a ``pricing`` client."""

    pricing: Any
    region: str
    usd_per_hour: dict[str, float] = field(default_factory=dict)
    """The last good answer; empty until one arrives (the catalog's prices apply then)."""
    last_error: str | None = None
    """Why the last refresh failed; None after a good one."""
    refreshed_at_s: float | None = None
    """Unix time of the last good refresh (``scaler_price_catalog_age_seconds``)."""
    _lock: anyio.Lock = field(default_factory=anyio.Lock, init=False)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, region: str, *, max_attempts: int = 5, session: AioSession | None = None
    ) -> AsyncIterator[OnDemandPriceList]:
        session = session or aws_session()
        config = AioConfig(
            region_name=pricing_endpoint_region(region),
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=30,
        )
        async with session.create_client("pricing", config=config) as pricing:
            yield cls(pricing, region)

    async def refresh(self) -> bool:
        """Read the region's prices. Never raises: a failure keeps the last good prices,
        logs why, and returns False."""
        async with self._lock:
            try:
                items = await self._products()
            except PortError as e:
                self.last_error = str(e)
                log.warning(
                    "aws.on_demand_prices_failed",
                    region=self.region,
                    error=str(e),
                    using="last live prices" if self.usd_per_hour else "catalog",
                )
                return False
            fresh, rejected = prices_from_price_list(items, self.region)
            if rejected:
                log.warning("aws.on_demand_prices_rejected", count=len(rejected),
                            examples=rejected[:5])
            if not fresh:
                self.last_error = "GetProducts listed no priced instance type"
                log.warning(
                    "aws.on_demand_prices_failed",
                    region=self.region,
                    error="GetProducts listed no priced instance type",
                    using="last live prices" if self.usd_per_hour else "catalog",
                )
                return False
            self.usd_per_hour = fresh
            self.last_error = None
            self.refreshed_at_s = time.time()
            log.info("aws.on_demand_prices", region=self.region, instance_types=len(fresh))
            return True

    async def _products(self) -> list[Any]:
        kwargs: dict[str, Any] = {
            "ServiceCode": "AmazonEC2",
            "Filters": product_filters(self.region),
            "FormatVersion": "aws_v1",
            "MaxResults": PAGE_SIZE,
        }
        out: list[Any] = []
        with translated("GetProducts"):
            for _ in range(MAX_PAGES):
                answer = await self.pricing.get_products(**kwargs)
                out.extend(answer.get("PriceList") or ())
                token = answer.get("NextToken")
                if not token:
                    return out
                kwargs["NextToken"] = token
        raise PortError(f"GetProducts: still paging after {MAX_PAGES} pages")


class CatalogRegionError(ValueError):
    """The catalog prices another region than the cluster's, and no live price replaces it."""


@contextlib.asynccontextmanager
async def on_demand_for(
    region: str, catalog_region: str, *, live: bool, session: AioSession | None = None
) -> AsyncIterator[OnDemandPriceList | None]:
    """On-demand prices for a cluster in ``region``: live ones (read once before this yields)
    when ``live``, else None (the catalog's).

    A catalog of another region would price every node at that region's rates without a
    word, so it is refused (:class:`CatalogRegionError`, one line naming the ways out) unless
    live prices are on and the first read succeeded; then the catalog still gives specs and
    Spot estimates, and the log says so once.
    """
    if not live:
        if region != catalog_region:
            raise CatalogRegionError(
                f"the catalog is for {catalog_region} but the cluster is in {region}: every "
                f"node would be priced at {catalog_region}'s rates; pass --catalog with a "
                f"{region} catalog (tools/build_catalog.py --region {region}), --live-prices "
                f"(AWS Price List API), or --region if {region} is wrong"
            )
        yield None
        return
    async with OnDemandPriceList.open(region, session=session) as prices:
        if not await prices.refresh() and region != catalog_region:
            raise CatalogRegionError(
                f"the catalog is for {catalog_region} but the cluster is in {region}, and "
                f"--live-prices could not read {region}'s prices ({prices.last_error}); pass "
                f"--catalog with a {region} catalog (tools/build_catalog.py --region {region})"
            )
        if region != catalog_region:
            log.warning(
                "aws.catalog_region_differs",
                catalog_region=catalog_region,
                region=region,
                on_demand="live",
                specs_and_spot_estimates="catalog",
            )
        yield prices
