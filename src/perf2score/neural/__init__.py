"""The neural backend: decoding settings, windowed decoding, the converter entry point."""
