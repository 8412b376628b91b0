"""A hint for a batch of images laid out channels-last (N, H, W, C), as numpy and PIL give images, where invlab
and torch's Conv2d take (N, C, H, W): named in the message of whatever fails on it (a shift past a 1 px wide frame,
a model's first forward pass), not refused up front, since such a shape can be meant."""

from __future__ import annotations


def channels_last_hint(image: tuple[int, ...]) -> str:
    """For a message about images that failed: " (... look channels-last ...)" when one image's shape (C, H, W)
    reads like (H, W, C), as numpy and PIL give images (1, 3 or 4 px wide, more than 4 channels), else "". Not a
    refusal: such a shape can be meant (a signal of many channels laid out for Conv2d)."""
    if len(image) == 3 and image[2] in (1, 3, 4) and image[0] > 4:
        return (f" (each image, of shape {tuple(image)}, looks channels-last (H, W, C), as numpy and PIL give them; "
                "invlab takes a batch (N, C, H, W): give images.permute(0, 3, 1, 2))")
    return ""
