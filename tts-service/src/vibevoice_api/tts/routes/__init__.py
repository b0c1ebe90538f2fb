"""The TTS service's routes, one module per API family (model discovery and health come from ``shared``)."""
