"""One fake server per upstream protocol, faithful to ``specs/upstream-protocols.md``.

``FAKES`` maps a provider name to ``"module:Class"``; each class subclasses
``vidgate.testing.fake.FakeUpstream`` and is served by ``vidgate fake-upstream NAME``.
"""

from __future__ import annotations

import importlib

from vidgate.testing.fake import FakeUpstream

FAKES: dict[str, str] = {
    "fal": "vidgate.testing.fakes.fal:FalFake",
    "replicate": "vidgate.testing.fakes.replicate:ReplicateFake",
    "gemini": "vidgate.testing.fakes.gemini:GeminiFake",
    "vertex": "vidgate.testing.fakes.vertex:VertexFake",
    "minimax": "vidgate.testing.fakes.minimax:MinimaxFake",
    "kling": "vidgate.testing.fakes.kling:KlingFake",
    "runway": "vidgate.testing.fakes.runway:RunwayFake",
    "luma": "vidgate.testing.fakes.luma:LumaFake",
    "dashscope": "vidgate.testing.fakes.dashscope:DashscopeFake",
    "ark": "vidgate.testing.fakes.ark:ArkFake",
    "xai": "vidgate.testing.fakes.xai:XaiFake",
    "openai": "vidgate.testing.fakes.openai_compat:OpenAICompatFake",
    "comfyui": "vidgate.testing.fakes.comfyui:ComfyUIFake",
}


def fake_class(name: str) -> type[FakeUpstream]:
    module_name, _, class_name = FAKES[name].partition(":")
    cls: type[FakeUpstream] = getattr(importlib.import_module(module_name), class_name)
    return cls
