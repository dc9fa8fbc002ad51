"""nsgen: clean/stripe sinogram pairs for training stripe-removal networks."""

__version__ = "0.1.0"
