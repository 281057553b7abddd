"""Dataset builder: filters, dedup, pairing, splits, exporters, dataset card."""
