"""DP-SGD for the trainable targets, through Opacus (the ``dp`` extra: ``pip install 'anonaudit[dp]'``).

A network trained with :class:`PrivateOptimizer` takes differentially private steps (Abadi et al.,
2016): each step looks at a Poisson sample of the training examples (each one in with probability
``q = batch_size / n``, :func:`poisson_batches`), computes every example's gradient separately,
clips each to L2 norm ``max_grad_norm``, sums them, adds Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm`` and divides by the expected batch size. The clipping, the
noise and the averaging are Opacus' :class:`~opacus.optimizers.DPOptimizer`; the noise multiplier is
the smallest one Opacus' RDP accountant allows for ``(epsilon, delta)`` after the planned number of
steps at rate ``q`` (:func:`opacus.accountants.utils.get_noise_multiplier`), and the epsilon spent
is what that accountant (:class:`~opacus.accountants.RDPAccountant`) composes over the steps taken.

Per-example gradients come from ``torch.func`` (``vmap`` over ``grad`` of a one-example loss, Opacus'
"no_op" mode, where the caller fills ``p.grad_sample``), not from Opacus' module hooks: the hooks
cannot differentiate a loss that itself holds a gradient (WGAN-GP's gradient penalty), while
``torch.func`` differentiates any one-example loss exactly, penalty included. A one-example loss must
depend on no other training example: no batch normalisation (replaced by group normalisation with
:func:`replace_batch_norm`, Opacus' ``ModuleValidator.fix``), no minibatch statistics.

The privacy unit is one training example as the method counts them (a plate or face crop, an
image); the networks not trained with DP-SGD must see no training data except through the private
ones (a GAN's generator learns only through its critic: post-processing). The Poisson samples and
the noise come from torch's generators, seeded by the training loop from the run's seed
(reproducible runs, exact resumes): the guarantee holds against an adversary who does not know that
seed, so a model released as DP must be trained with a secret one.

Opacus is imported only when a DP run is planned or a network made private for training: the
package works without the ``dp`` extra, and asking for DP training without it is a
:class:`~anonaudit.errors.ModelUnavailableError` naming the install command. docs/training.md
("Differentially private training") says what the guarantee covers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ModelUnavailableError
from ..params import check_range

if TYPE_CHECKING:
    import torch

#: The command that installs Opacus, named by the error raised without it.
INSTALL = "pip install 'anonaudit[dp]'"
#: The accountant that plans the noise and counts the epsilon spent (Opacus' name).
ACCOUNTANT = "rdp"
#: The Renyi orders the accountant optimises over: a few below 2, every integer to 63 (as Opacus'
#: defaults) and larger ones, which give the tighter bound at the large epsilons (8 and more) of weakly
#: private training. Fewer fractional orders than Opacus' defaults: they are slow to evaluate.
ALPHAS: tuple[float, ...] = (1.25, 1.5, 1.75, *range(2, 64), *range(64, 256, 8), *range(256, 1025, 64))
#: Private switch for tests that plant a bug: False trains WITHOUT noise while the accountant still
#: counts the planned noise, i.e. a run that claims an epsilon it does not have. Never set it otherwise.
_ADD_NOISE = True


def require_opacus() -> Any:
    """The ``opacus`` module, or :class:`ModelUnavailableError` with the install command."""
    try:
        import opacus
    except ImportError as exc:
        raise ModelUnavailableError("opacus", f"DP-SGD training needs Opacus ({exc})", INSTALL) from None
    return opacus


def check_dp_params(owner: str, epsilon: Any, delta: Any, max_grad_norm: Any) -> None:
    """Raise :class:`ConfigError` naming ``owner`` unless ``epsilon`` is None (no DP) or a finite
    number > 0, ``delta`` is in (0, 1) and ``max_grad_norm`` is a finite number > 0."""
    check_range(owner, "dp_epsilon", epsilon, gt=0, lt=math.inf, optional=True)
    check_range(owner, "dp_delta", delta, gt=0, lt=1)
    check_range(owner, "dp_max_grad_norm", max_grad_norm, gt=0, lt=math.inf)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Poisson batches in one epoch: ``n / batch_size`` rounded, at least 1 (one pass in expectation)."""
    return max(1, round(int(n) / int(batch_size)))


def poisson_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of Poisson-sampled batches of indices into ``n`` examples: :func:`steps_per_epoch`
    batches, each taking every example independently with probability ``min(1, batch_size / n)``
    (drawn from ``generator``); a batch may be empty, sizes vary."""
    import torch

    rate = min(1.0, int(batch_size) / int(n))
    for _ in range(steps_per_epoch(n, batch_size)):
        yield torch.nonzero(torch.rand(int(n), generator=generator) < rate).flatten()


@dataclasses.dataclass(frozen=True)
class DPPlan:
    """A DP-SGD run planned before it starts: the guarantee it aims at and the noise that gives it."""

    epsilon: float
    delta: float
    max_grad_norm: float
    examples: int
    sample_rate: float
    steps: int
    noise_multiplier: float

    @property
    def expected_batch_size(self) -> int:
        """What the clipped gradients' sum is divided by (Opacus' ``expected_batch_size``)."""
        return max(1, round(self.sample_rate * self.examples))

    @classmethod
    def make(cls, epsilon: float, delta: float, max_grad_norm: float, examples: int, batch_size: int,
             steps: int) -> DPPlan:
        """The plan for ``steps`` Poisson batches of expected size ``batch_size`` from ``examples``
        examples at ``(epsilon, delta)``; the noise multiplier from Opacus' accountant."""
        require_opacus()
        from opacus.accountants.utils import get_noise_multiplier

        if examples < 2:
            raise ConfigError(f"DP-SGD needs at least 2 training examples, got {examples}")
        if delta >= 1.0 / examples:
            raise ConfigError(
                f"dp_delta={delta} is not below 1/n = 1/{examples}: a delta that large allows releasing "
                f"one training example outright; set dp_delta below {1.0 / examples:.3g}"
            )
        rate = min(1.0, int(batch_size) / int(examples))
        try:
            sigma = get_noise_multiplier(target_epsilon=float(epsilon), target_delta=float(delta), sample_rate=rate,
                                         steps=int(steps), accountant=ACCOUNTANT, alphas=list(ALPHAS))
        except ValueError as exc:
            raise ConfigError(f"dp_epsilon={epsilon}: no noise reaches it in {steps} steps ({exc})") from None
        return cls(float(epsilon), float(delta), float(max_grad_norm), int(examples), rate, int(steps), float(sigma))


class PrivateOptimizer:
    """One network's optimizer made DP-SGD (see the module docstring).

    ``step(loss_fn, *examples)`` runs one private step: ``loss_fn(model, *one_example)`` is the loss
    of ONE example (every tensor of ``examples`` sliced to a batch of 1), where ``model(*args)`` calls
    the network with the parameters being differentiated; its randomness must come in through
    ``examples`` (e.g. a penalty's interpolation weights drawn beforehand).

    Without a ``plan`` (a network built to load a checkpoint, not to train) it cannot step; it
    carries the checkpoint's privacy record (:meth:`record`). Its ``state_dict`` is the wrapped
    optimizer's state and that record.
    """

    def __init__(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: DPPlan | None):
        self.network = network
        self.original = optimizer
        self.plan = plan
        self.accountant: Any = None
        self._loaded: dict[str, Any] | None = None
        self._dp: Any = None
        if plan is not None:
            require_opacus()
            from opacus.accountants import RDPAccountant
            from opacus.optimizers import DPOptimizer

            self.accountant = RDPAccountant()
            self._dp = DPOptimizer(
                optimizer,
                noise_multiplier=plan.noise_multiplier if _ADD_NOISE else 0.0,
                max_grad_norm=plan.max_grad_norm,
                expected_batch_size=plan.expected_batch_size,
            )

    def step(self, loss_fn: Callable[..., torch.Tensor], *examples: torch.Tensor) -> float:
        """One DP-SGD step on the examples' batch; returns their mean loss (nan for an empty batch)."""
        import torch
        from torch.func import functional_call, grad_and_value, vmap

        if self._dp is None or self.plan is None:
            raise ConfigError("DP-SGD step without a plan: train through anonaudit.training.train, which plans the run")
        named = dict(self.network.named_parameters())
        params = {k: p.detach() for k, p in named.items() if p.requires_grad}
        buffers = dict(self.network.named_buffers())
        self._dp.zero_grad(set_to_none=True)
        if len(examples[0]):
            def one(p: dict[str, torch.Tensor], *example: torch.Tensor) -> torch.Tensor:
                def model(*args: Any) -> torch.Tensor:
                    return functional_call(self.network, (p, buffers), args)

                return loss_fn(model, *(e.unsqueeze(0) for e in example))

            grads, losses = vmap(grad_and_value(one), in_dims=(None, *([0] * len(examples))))(params, *examples)
            loss = float(losses.mean())
        else:  # an empty Poisson batch: the step is noise alone
            grads = {k: torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device) for k, p in params.items()}
            loss = float("nan")
        for k in params:
            named[k].grad_sample = grads[k].detach()
        self._dp.step()
        self.accountant.step(noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate)
        return loss

    def epsilon(self) -> float:
        """The epsilon spent so far at the plan's delta (0 before the first step)."""
        if self.plan is None or not self.accountant.history:
            return 0.0
        return float(self.accountant.get_epsilon(delta=self.plan.delta, alphas=list(ALPHAS)))

    def record(self) -> dict[str, Any] | None:
        """What a checkpoint, a manifest and a fitted target keep: the plan, the epsilon spent and the
        steps taken (None for an unplanned optimizer that loaded no record)."""
        if self.plan is None:
            return self._loaded
        return {
            **dataclasses.asdict(self.plan),
            "epsilon_spent": self.epsilon(),
            "steps_taken": sum(int(steps) for _, _, steps in self.accountant.history),
            "accountant": ACCOUNTANT,
            "history": [list(h) for h in self.accountant.history],
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.original.state_dict(), "privacy": self.record()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the wrapped optimizer and, from the record, the accounting of a resumed run. A run
        resumes only under the plan it started with: its noise was set for that plan's steps, and a
        longer or otherwise different run would spend more than the epsilon it claims."""
        self._loaded = state.get("privacy")
        if self.plan is not None and self._loaded is not None:
            planned = dataclasses.asdict(self.plan)
            changed = {k: (self._loaded.get(k), v) for k, v in planned.items() if self._loaded.get(k) != v}
            if changed:
                raise ConfigError(
                    "cannot resume a DP-SGD run under another plan (checkpoint's value, this run's): "
                    f"{changed}; its noise was set for the checkpoint's plan. Keep the run's settings or train "
                    "from scratch"
                )
            self.accountant.history = [tuple(h) for h in self._loaded.get("history", [])]
        self.original.load_state_dict(state["optimizer"])


def replace_batch_norm(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` with every batch normalisation replaced by group normalisation (Opacus'
    ``ModuleValidator.fix``): batch statistics mix the examples of a batch, which DP-SGD forbids."""
    require_opacus()
    from opacus.validators import ModuleValidator

    return ModuleValidator.fix(network)


__all__ = [
    "ACCOUNTANT",
    "INSTALL",
    "DPPlan",
    "PrivateOptimizer",
    "check_dp_params",
    "poisson_batches",
    "replace_batch_norm",
    "require_opacus",
    "steps_per_epoch",
]
