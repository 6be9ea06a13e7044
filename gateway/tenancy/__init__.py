"""Who is calling and what it costs: tenants, keys, limits, budgets, usage, prices."""
