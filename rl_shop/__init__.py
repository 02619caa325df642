"""rl_shop: RL research codebase for multi-agent e-commerce shopping assistants."""

__version__ = "0.1.0"
