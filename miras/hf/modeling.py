"""Every miras model as a Hugging Face ``transformers`` model: :class:`MirasConfig` and
:class:`MirasForCausalLM`, registered with ``AutoConfig`` and ``AutoModelForCausalLM`` (model type
``miras``) when this module is imported, as fla registers its models.

The config holds the whole architecture (the resolved Miras spec with every parameter, the gate
kinds, the attention window, the ``model`` options including ``impl``) and the plugins it needs,
so a saved folder rebuilds its model without the sweep that trained it. ``generate`` decodes with
the models' own recurrent step (:meth:`miras.models.LanguageModel.step`): the cache is every
layer's state (memory weights, conv windows, KV caches), advanced one token at a time.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..config.schema import ModelConfig
from ..models import Architecture, LanguageModel
from ..space import MirasSpec
from ..space.registry import AXES, BUILTIN, REGISTRIES

MODEL_TYPE = "miras"


class MirasConfig(PretrainedConfig):
    """A miras model's architecture and size, as a ``transformers`` config.

    ``miras_architecture``: ``{name, spec, gate_kinds, window}`` (:class:`miras.models.Architecture`,
    the spec canonical: every parameter given); ``miras_model``: the ``model`` section at one width;
    ``miras_plugins``: ``{axis, name, origin, module}`` of every option that is not built in.
    """

    model_type = MODEL_TYPE

    vocab_size: int = 2
    miras_architecture: dict | None = None
    miras_model: dict | None = None
    miras_plugins: list | None = None
    tie_word_embeddings: bool = False
    """The head reads the embedding matrix itself: there is no separate head weight to tie."""

    @property
    def hidden_size(self) -> int:
        return int(self._model_field("d_model"))

    @property
    def num_hidden_layers(self) -> int:
        return int(self._model_field("n_layers"))

    def _model_field(self, name: str) -> Any:
        """A field of ``miras_model``, or the ``model`` section's default where none is given."""
        return (self.miras_model or {}).get(name, ModelConfig.model_fields[name].default)


def config_of(model: LanguageModel, **token_ids: int | None) -> MirasConfig:
    """The :class:`MirasConfig` that rebuilds ``model``; ``token_ids``: ``eos_token_id`` and the like."""
    arch = model.arch
    architecture = {
        "name": arch.name,
        "spec": arch.spec.canonical() if arch.spec is not None else None,
        "gate_kinds": dict(arch.gate_kinds) if arch.gate_kinds else None,
        "window": arch.window,
    }
    return MirasConfig(
        vocab_size=model.vocab_size,
        miras_architecture=architecture,
        miras_model=model.model_config.model_dump(mode="json"),
        miras_plugins=_plugins_of(arch.spec),
        **token_ids,
    )


def _plugins_of(spec: MirasSpec | None) -> list[dict[str, str]]:
    """Where each option of ``spec`` that miras does not ship comes from."""
    if spec is None:
        return []
    out = []
    for axis in AXES:
        option = REGISTRIES[axis].get(getattr(spec, axis).name)
        module = option.impl.__module__
        if option.origin != BUILTIN or not module.startswith("miras."):
            out.append({"axis": axis, "name": option.name, "origin": option.origin, "module": module})
    return out


def _require_plugins(plugins: list[dict[str, str]]) -> None:
    """Import the module of every recorded plugin option the registry does not have yet;
    ``ImportError`` names the plugin when it is not installed."""
    for plugin in plugins:
        if plugin["name"] in REGISTRIES[plugin["axis"]]:
            continue
        try:
            importlib.import_module(plugin["module"])
        except ImportError as error:
            raise ImportError(
                f"this model's {plugin['axis']} option {plugin['name']!r} comes from the plugin "
                f"{plugin['origin']!r} (module {plugin['module']!r}), which is not installed here: install it "
                "and load the model again"
            ) from error
        if plugin["name"] not in REGISTRIES[plugin["axis"]]:
            raise ImportError(
                f"this model's {plugin['axis']} option {plugin['name']!r}: module {plugin['module']!r} imported "
                f"but registered no such option (plugin {plugin['origin']!r} may have changed)"
            )


def language_model(config: MirasConfig) -> LanguageModel:
    """The :class:`~miras.models.LanguageModel` that ``config`` describes (fresh weights)."""
    if config.miras_architecture is None or config.miras_model is None:
        raise ValueError("a MirasConfig needs miras_architecture and miras_model (see miras.hf.config_of)")
    _require_plugins(config.miras_plugins or [])
    described = config.miras_architecture
    spec = MirasSpec.model_validate(described["spec"]) if described.get("spec") is not None else None
    arch = Architecture(described["name"], spec, described.get("gate_kinds"), described.get("window"))
    return LanguageModel(arch, config.vocab_size, ModelConfig.model_validate(config.miras_model))


@dataclass
class MirasCache:
    """``generate``'s cache: every layer's decoding state (:meth:`LanguageModel.empty_cache`) and
    how many tokens it has seen."""

    layers: list[object]
    seen_tokens: int = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: Tensor) -> None:
        """Keep the sequences ``beam_idx`` ``[B']`` (beam search): every state tensor is indexed on its batch dim."""
        self.layers = _select(self.layers, beam_idx)


def _select(state: Any, index: Tensor) -> Any:
    """``state`` (tensors ``[B, ...]`` inside dataclasses, dicts, lists and tuples) at batch rows
    ``index``; a tensor of batch 1 is shared by every sequence and kept as it is."""
    if isinstance(state, Tensor):
        return state if state.shape[0] == 1 else state.index_select(0, index.to(state.device))
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        fields = {field.name: _select(getattr(state, field.name), index) for field in dataclasses.fields(state)}
        return dataclasses.replace(state, **fields)
    if isinstance(state, dict):
        return {key: _select(value, index) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_select(value, index) for value in state)
    return state


class MirasForCausalLM(PreTrainedModel, GenerationMixin):
    """A miras language model behind the ``transformers`` causal-LM interface.

    ``forward(input_ids [B, T])`` -> logits ``[B, T, vocab]`` (and the next-token loss when
    ``labels`` are given, ``-100`` ignored). Without a cache it runs the model's parallel forward
    (the chunked scan); with ``use_cache`` or a ``past_key_values`` (:class:`MirasCache`) it
    advances the recurrent state one token at a time and returns the new cache.
    """

    config_class = MirasConfig
    base_model_prefix = "lm"
    main_input_name = "input_ids"
    _is_stateful = True

    def __init__(self, config: MirasConfig) -> None:
        super().__init__(config)
        self.lm = language_model(config)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Keep the miras initialisation (the one the harness trains from)."""

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.lm.embed

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        past_key_values: MirasCache | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        inputs_embeds: Tensor | None = None,
        return_dict: bool | None = None,
        **_: Any,
    ) -> CausalLMOutputWithPast:
        if input_ids is None or inputs_embeds is not None:
            raise ValueError("MirasForCausalLM takes input_ids (inputs_embeds are not supported)")
        cached = past_key_values is not None or bool(use_cache)
        _check_mask(attention_mask, input_ids, cached)
        if not cached:
            logits, cache = self.lm(input_ids), None
        else:
            if labels is not None:
                raise ValueError(
                    "labels need the parallel forward (use_cache=False): the cached steps keep no gradient"
                )
            cache = past_key_values or MirasCache(self.lm.empty_cache(input_ids.shape[0]))
            logits = self._steps(input_ids, cache)
        loss = None
        if labels is not None:
            shifted = labels[:, 1:].reshape(-1)
            scores = logits[:, :-1].reshape(shifted.numel(), -1)
            scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
            loss = F.cross_entropy(scores, shifted, ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=cache)

    def _steps(self, input_ids: Tensor, cache: MirasCache) -> Tensor:
        """Advance ``cache`` over ``input_ids`` ``[B, T]``; the logits ``[B, T, vocab]`` of every step."""
        logits = []
        for t in range(input_ids.shape[1]):
            step_logits, cache.layers = self.lm.step(input_ids[:, t], cache.layers)
            logits.append(step_logits)
        cache.seen_tokens += input_ids.shape[1]
        return torch.stack(logits, dim=1)

    def prepare_inputs_for_generation(
        self,
        input_ids: Tensor,
        past_key_values: MirasCache | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The tokens the cache has not seen yet (the whole prompt first, then the newest token);
        with ``use_cache=False``, the whole sequence through the parallel forward at every step."""
        mask = kwargs.get("attention_mask")
        if use_cache is False:
            return {"input_ids": input_ids, "attention_mask": mask, "use_cache": False}
        if past_key_values is None:
            return {"input_ids": input_ids, "attention_mask": mask, "use_cache": True}
        return {"input_ids": input_ids[:, past_key_values.seen_tokens :], "past_key_values": past_key_values}


def _check_mask(attention_mask: Tensor | None, input_ids: Tensor, cached: bool) -> None:
    """Pads are allowed only after the real tokens and only without a cache: the logits of the real
    tokens do not depend on the pads after them, but a recurrent state (and a cache continued by
    ``generate``) would take every pad in."""
    if attention_mask is None:
        return
    if attention_mask.shape[-1] != input_ids.shape[-1] and not cached:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    mask = attention_mask.to(torch.bool)
    if mask.all():
        return
    if cached:
        raise ValueError(
            "MirasForCausalLM decodes from a recurrent state, which cannot skip padding: generate from prompts "
            "of one length (or one prompt at a time), without pads"
        )
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError(
            "MirasForCausalLM supports right padding only (a pad before a real token would enter the "
            "recurrent state): pad on the right, e.g. tokenizer.padding_side = 'right'"
        )


def to_hf(model: LanguageModel, **token_ids: int | None) -> MirasForCausalLM:
    """``model`` (its weights shared, not copied) as a :class:`MirasForCausalLM`."""
    hf_model = MirasForCausalLM(config_of(model, **token_ids))
    hf_model.lm = model
    return hf_model


AutoConfig.register(MODEL_TYPE, MirasConfig, exist_ok=True)
AutoModelForCausalLM.register(MirasConfig, MirasForCausalLM, exist_ok=True)
