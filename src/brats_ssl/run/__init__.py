"""A training run on BraTS-like data: its context (settings, cases, cache, device), its network,
its phases on the domain-free engine, and the typed result a method hands back."""
