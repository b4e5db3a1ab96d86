r"""The neural autoregressive distribution estimator (NADE) over binary vectors."""

from __future__ import annotations

__all__ = ["NADE"]

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import constraints

from ..ops.nade import DEFAULT_CHUNK_SIZE, nade_hidden_logits
from .autoregressive import BinaryAutoregressive, shared_across_batch
from .validation import broadcast_batch_shapes, check_floating_parameters


class NADE(BinaryAutoregressive):
    r"""Neural autoregressive distribution estimator.

    .. math::
        h_d = \sigma\big(b + W_{:, <d}\, x_{<d}\big), \qquad
        p(x_d = 1 \mid x_{<d}) = \sigma\big(c_d + V_d \cdot h_d\big)

    with :math:`<` the model's ordering. The hidden pre-activations share the running sum
    :math:`a_{d+1} = a_d + W_{:, d}\, x_d`, so :meth:`log_prob` costs :math:`O(DH)` per example
    (a chunked, memory-lean pass; see :mod:`pyro_ar.ops.nade`) and sampling
    carries the same running sum, :math:`O(DH)` per sample.

    Parameters may carry batch dimensions (broadcast against each other): that is how a model
    conditions NADE on a context, e.g. ``output_bias = f(context)``. A batched ``hidden_bias``
    or ``output_bias`` keeps the fast path; batched ``input_weight`` or ``output_weight`` use a
    broadcast chunked pass.

    Arguments:
        input_weight: :math:`W`, shape ``batch_shape + (H, D)``.
        hidden_bias: :math:`b`, shape ``batch_shape + (H,)``.
        output_weight: :math:`V`, shape ``batch_shape + (D, H)``.
        output_bias: :math:`c`, shape ``batch_shape + (D,)``.
        ordering: A permutation of ``range(D)``: ``ordering[k]`` is generated at step ``k``.
            Parameters stay indexed by dimension, whatever the ordering.
        chunk_size: Dimensions per chunk in the parallel pass (a speed knob only).
        validate_args: Whether to validate parameters and values.

    References:
        | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
        | https://proceedings.mlr.press/v15/larochelle11a.html
        | Neural Autoregressive Distribution Estimation (Uria et al., 2016)
        | https://jmlr.org/papers/v17/16-272.html

    Example:
        >>> H, D = 8, 5
        >>> d = NADE(torch.randn(H, D), torch.zeros(H), torch.randn(D, H), torch.zeros(D))
        >>> d.log_prob(d.sample((3,))).shape
        torch.Size([3])
    """

    arg_constraints = {
        "input_weight": constraints.independent(constraints.real, 2),
        "hidden_bias": constraints.independent(constraints.real, 1),
        "output_weight": constraints.independent(constraints.real, 2),
        "output_bias": constraints.independent(constraints.real, 1),
    }
    expand_shares = ("input_weight", "hidden_bias", "output_weight", "output_bias", "chunk_size")

    def __init__(
        self,
        input_weight: Tensor,
        hidden_bias: Tensor,
        output_weight: Tensor,
        output_bias: Tensor,
        ordering: Tensor | Sequence[int] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        validate_args: bool | None = None,
    ) -> None:
        parameters = {
            "input_weight": input_weight,
            "hidden_bias": hidden_bias,
            "output_weight": output_weight,
            "output_bias": output_bias,
        }
        check_floating_parameters("NADE", **parameters)
        if input_weight.dim() < 2:
            raise ValueError(
                f"NADE: input_weight must have shape (..., H, D), got {tuple(input_weight.shape)}"
            )
        hidden, num_dims = input_weight.shape[-2:]
        if hidden < 1:
            raise ValueError("NADE needs at least one hidden unit, got H=0")
        expected = {
            "hidden_bias": (hidden,),
            "output_weight": (num_dims, hidden),
            "output_bias": (num_dims,),
        }
        for name, event in expected.items():
            value = parameters[name]
            if value.dim() < len(event) or tuple(value.shape[-len(event) :]) != event:
                raise ValueError(
                    f"NADE: with input_weight of shape (..., H={hidden}, D={num_dims}), {name} "
                    f"must have shape (..., {', '.join(map(str, event))}), got "
                    f"{tuple(value.shape)}"
                )
            if value.dtype != input_weight.dtype or value.device != input_weight.device:
                raise ValueError(f"NADE: {name} must share input_weight's dtype and device")
        batch_shape = broadcast_batch_shapes(
            "NADE",
            input_weight=input_weight.shape[:-2],
            hidden_bias=hidden_bias.shape[:-1],
            output_weight=output_weight.shape[:-2],
            output_bias=output_bias.shape[:-1],
        )
        if chunk_size < 1:
            raise ValueError(f"NADE: chunk_size must be positive, got {chunk_size}")
        # Stored as given and broadcast lazily (see FVSBN): expanding to a plate keeps the
        # weights shared, and the fast path applies.
        self.input_weight = input_weight
        self.hidden_bias = hidden_bias
        self.output_weight = output_weight
        self.output_bias = output_bias
        self.chunk_size = int(chunk_size)
        super().__init__(num_dims, batch_shape, ordering, input_weight.device, validate_args)

    @property
    def hidden_features(self) -> int:
        """The number :math:`H` of hidden units."""
        return self.input_weight.shape[-2]

    @property
    def _dtype(self) -> torch.dtype:
        return self.input_weight.dtype

    def _ordered_parameters(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        weight, bias = self.input_weight, self.hidden_bias
        output_weight, output_bias = self.output_weight, self.output_bias
        if not self._natural_order:
            weight = weight[..., self.ordering]
            output_weight = output_weight[..., self.ordering, :]
            output_bias = output_bias[..., self.ordering]
        return weight, bias, output_weight, output_bias

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        weight, bias, output_weight, output_bias = self._ordered_parameters()
        # parameters expanded to a plate (stride 0) are still shared: the fast kernel applies
        shared_weight = shared_across_batch(weight, 2)
        shared_output = shared_across_batch(output_weight, 2)
        if shared_weight is not None and shared_output is not None:
            weight, output_weight = shared_weight, shared_output
        logits = nade_hidden_logits(ordered_value, weight, bias, output_weight, self.chunk_size)
        return logits + output_bias

    def _sampling_start(self, shape: torch.Size) -> dict[str, Tensor]:
        weight, bias, output_weight, output_bias = self._ordered_parameters()
        return {
            "running": bias.expand(shape + bias.shape[-1:]).clone(),
            "weight_rows": weight.transpose(-1, -2),  # (..., D, H)
            "output_weight": output_weight,
            "output_bias": output_bias,
        }

    def _sampling_logit(self, state: dict[str, Tensor], step: int) -> Tensor:
        hidden = torch.sigmoid(state["running"])
        output_weight = state["output_weight"][..., step, :]
        if output_weight.dim() == 1:
            logit = hidden @ output_weight
        else:
            logit = (hidden * output_weight).sum(-1)
        return logit + state["output_bias"][..., step]

    def _sampling_advance(self, state: dict[str, Tensor], step: int, value: Tensor) -> None:
        state["running"].add_(value.unsqueeze(-1) * state["weight_rows"][..., step, :])
