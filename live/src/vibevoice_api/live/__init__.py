"""Live voice sessions: the OpenAI Realtime protocol over the ASR and TTS services (no model of its own)."""
