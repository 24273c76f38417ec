"""Stage 2, transcripts: publisher captions first, else the enclosure downloaded,
decoded in windows and transcribed by a Whisper engine in a worker process.
"""
