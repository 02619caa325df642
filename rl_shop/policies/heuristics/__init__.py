"""Hand-written baseline policies, one module per environment; the learned policies must beat them."""
