"""Which providers exist, and how to build an adapter for one from configuration.

Adding a provider is one module plus one line in ``PROVIDERS``. Adapters are
imported lazily so that a provider's optional dependencies (google-auth for
Vertex, PyJWT for Kling) cost nothing until that provider is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vidgate.providers.adapter import complete
from vidgate.providers.base import (
    MinimalAdapter,
    ProviderAdapter,
    ProviderContext,
)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str  # the route's provider word, and the NAME in VIDGATE_<NAME>_API_KEY
    target: str  # "module:Class" of the adapter, constructed as Class(ctx)
    default_base_url: str
    label: str
    needs: str  # what an operator must configure, for the README and `vidgate providers`
    extra_env: tuple[str, ...] = ()  # option names read as VIDGATE_<NAME>_<OPTION>
    enabled_by: tuple[str, ...] = ("api_key",)  # any of these settings enables the provider


PROVIDERS: Mapping[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo(
            "simulator",
            "vidgate.providers.simulator:SimulatorAdapter",
            "",
            "Built-in simulator",
            "nothing (test-mode keys always use it)",
        ),
        ProviderInfo(
            "fal",
            "vidgate.providers.fal:FalAdapter",
            "https://queue.fal.run",
            "fal.ai queue API",
            "VIDGATE_FAL_API_KEY",
            ("jwks_url",),
        ),
        ProviderInfo(
            "replicate",
            "vidgate.providers.replicate:ReplicateAdapter",
            "https://api.replicate.com",
            "Replicate",
            "VIDGATE_REPLICATE_API_KEY",
            ("webhook_secret",),
        ),
        ProviderInfo(
            "gemini",
            "vidgate.providers.gemini:GeminiAdapter",
            "https://generativelanguage.googleapis.com",
            "Google Veo (Gemini API)",
            "VIDGATE_GEMINI_API_KEY",
        ),
        ProviderInfo(
            "vertex",
            "vidgate.providers.vertex:VertexAdapter",
            "https://us-central1-aiplatform.googleapis.com",
            "Google Veo (Vertex AI)",
            "VIDGATE_VERTEX_API_KEY (an access token) or VIDGATE_VERTEX_CREDENTIALS_FILE,"
            " plus VIDGATE_VERTEX_PROJECT",
            ("project", "location", "credentials_file", "storage_uri", "storage_base_url"),
            ("api_key", "credentials_file"),
        ),
        ProviderInfo(
            "minimax",
            "vidgate.providers.minimax:MinimaxAdapter",
            "https://api.minimax.io",
            "MiniMax Hailuo",
            "VIDGATE_MINIMAX_API_KEY",
        ),
        ProviderInfo(
            "kling",
            "vidgate.providers.kling:KlingAdapter",
            "https://api-singapore.klingai.com",
            "Kling",
            "VIDGATE_KLING_API_KEY (access key) and VIDGATE_KLING_SECRET_KEY",
            ("secret_key",),
        ),
        ProviderInfo(
            "runway",
            "vidgate.providers.runway:RunwayAdapter",
            "https://api.dev.runwayml.com",
            "Runway",
            "VIDGATE_RUNWAY_API_KEY",
        ),
        ProviderInfo(
            "luma",
            "vidgate.providers.luma:LumaAdapter",
            "https://api.lumalabs.ai",
            "Luma Dream Machine",
            "VIDGATE_LUMA_API_KEY",
        ),
        ProviderInfo(
            "dashscope",
            "vidgate.providers.dashscope:DashscopeAdapter",
            "https://dashscope-intl.aliyuncs.com",
            "Alibaba DashScope (Wan)",
            "VIDGATE_DASHSCOPE_API_KEY",
        ),
        ProviderInfo(
            "ark",
            "vidgate.providers.ark:ArkAdapter",
            "https://ark.ap-southeast.bytepluses.com",
            "ByteDance Seedance (ModelArk / Ark)",
            "VIDGATE_ARK_API_KEY",
        ),
        ProviderInfo(
            "xai",
            "vidgate.providers.xai:XaiAdapter",
            "https://api.x.ai",
            "xAI Grok Imagine",
            "VIDGATE_XAI_API_KEY",
        ),
        ProviderInfo(
            "openai",
            "vidgate.providers.openai_compat:OpenAICompatAdapter",
            "https://api.openai.com",
            "OpenAI-compatible Videos API",
            "VIDGATE_OPENAI_API_KEY and usually VIDGATE_OPENAI_BASE_URL",
            ("webhook_secret", "organization", "project"),
        ),
        ProviderInfo(
            "comfyui",
            "vidgate.providers.comfyui:ComfyUIAdapter",
            "http://127.0.0.1:8188",
            "Self-hosted ComfyUI",
            "VIDGATE_COMFYUI_BASE_URL (VIDGATE_COMFYUI_API_KEY optional), VIDGATE_COMFYUI_WORKFLOW",
            ("workflow", "fps"),
            ("base_url",),
        ),
    )
}


def adapter_factory(name: str) -> Callable[[ProviderContext], ProviderAdapter]:
    """A builder of ``name``'s adapter (with the shared defaults around a minimal one);
    raises KeyError for an unknown provider."""
    info = PROVIDERS[name]
    module_name, _, class_name = info.target.partition(":")
    cls: Callable[[ProviderContext], MinimalAdapter] = getattr(
        importlib.import_module(module_name), class_name
    )

    def build(ctx: ProviderContext) -> ProviderAdapter:
        return complete(cls(ctx), ctx)

    return build
