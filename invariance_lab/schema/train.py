"""The train: section of a config: the optimiser and schedule, the same for every model.

    TrainConfig(epochs=5, batch_size=64, lr=1e-3, optimizer="adam")
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_serializer

from .fields import BIG, Float, Int, _Schema


class TrainConfig(_Schema):
    epochs: Int = Field(5, ge=0, le=BIG)  # passes over the training set (5 learns A vs B); 0 = untrained networks
    batch_size: Int = Field(64, ge=1, le=BIG)  # mini-batch size: 64 gives ~30 steps per epoch of 2000 images
    lr: Float = Field(1e-3, gt=0, le=10)  # learning rate: Adam's usual 1e-3; above 10 only overflows
    weight_decay: Float = Field(0.0, ge=0, le=10)  # L2 penalty (decoupled for adamw); 0 = none
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # adam | adamw | sgd (momentum 0.9); adam needs no tuning
    test_every: Int = Field(1, ge=0, le=BIG)  # test accuracy every N epochs and after the last; 0: the last only

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        # Added after runs were fingerprinted: written only when not the default (it changes no weight anyway).
        d = handler(self)
        if d.get("test_every") == 1:
            del d["test_every"]
        return d
