"""Miraflow (miraflow.ai): avatar videos, images, media upload."""
