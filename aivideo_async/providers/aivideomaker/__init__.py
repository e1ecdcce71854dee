"""AIVideoMaker (aivideomaker.ai API v1): text/image to video, long video."""
