"""
AIVideoMaker (aivideomaker.ai API v1): text/image to video, long video.

Example::

    from aivideo_async.providers.aivideomaker import AIVideoMaker

    async with AIVideoMaker() as avm:          # key from AIVIDEO_API_KEY
        task_id = await avm.submit_once(avm.text_to_video(prompt="waves", duration=5))
"""

from __future__ import annotations

from ._client import DEFAULT_MAX_IMAGE_BYTES, IMAGE_MEDIA_TYPES, AIVideoMaker
from ._wire import ASPECT_RATIOS, DURATIONS, MODELS, Task, TaskOutput

__all__ = [
    "AIVideoMaker",
    "Task",
    "TaskOutput",
    "MODELS",
    "DURATIONS",
    "ASPECT_RATIOS",
    "IMAGE_MEDIA_TYPES",
    "DEFAULT_MAX_IMAGE_BYTES",
]
