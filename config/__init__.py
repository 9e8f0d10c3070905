"""Settings from the environment. Imports nothing of ours."""

from config.settings import DevelopmentConfig, ProductionConfig, TestConfig, load_config

__all__ = ["DevelopmentConfig", "ProductionConfig", "TestConfig", "load_config"]
