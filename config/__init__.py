"""Configuration: the TOML file and the environment, validated into typed settings."""

from __future__ import annotations

from config.load import config_path, load_settings, settings_from_mapping
from config.settings import (
    AccountSettings,
    BrokerSettings,
    RetentionSettings,
    ScheduleSettings,
    Settings,
    StorageSettings,
    TranscodeSettings,
)

__all__ = [
    "AccountSettings",
    "BrokerSettings",
    "RetentionSettings",
    "ScheduleSettings",
    "Settings",
    "StorageSettings",
    "TranscodeSettings",
    "config_path",
    "load_settings",
    "settings_from_mapping",
]
