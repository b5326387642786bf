"""Test-wide setup: fake 8 CPU devices and keep TensorFlow off accelerators.

XLA_FLAGS must be set before jax is first imported, which is why it lives here.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
