"""Libraries the engines share: espeak-ng speech, ffmpeg audio and video, Whisper recognition, WORLD voices,
face finding and translation. Engines import from here and never from one another."""
