"""The ASR service: VibeVoice-ASR behind the OpenAI transcription API."""
