"""Media: what the downloaded bytes are and whether they decode (ffmpeg, or the structure of a PCM
WAV), and making renditions. Knows files and ffmpeg, nothing about vendors, storage or queues."""
