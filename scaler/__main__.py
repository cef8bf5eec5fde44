from scaler.cli import entry

raise SystemExit(entry())
