"""
Miraflow (miraflow.ai): avatar videos, images, media upload.

Example::

    from aivideo_async.providers.miraflow import Miraflow

    async with Miraflow() as mira:           # key from MIRAFLOW_API_KEY
        job_id = await mira.submit_once(mira.image(prompt="a red fox"))
"""

from __future__ import annotations

from ._client import DEFAULT_MAX_UPLOAD_BYTES, UPLOAD_MEDIA_TYPES, Miraflow
from ._wire import Avatar, MediaUpload, Video, VideoMetadata, Voice

__all__ = [
    "Miraflow",
    "Avatar",
    "Voice",
    "Video",
    "VideoMetadata",
    "MediaUpload",
    "UPLOAD_MEDIA_TYPES",
    "DEFAULT_MAX_UPLOAD_BYTES",
]
