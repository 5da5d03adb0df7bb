"""Model-provider adapters behind ``application.ports.ModelProvider``."""
