"""Typed configs: family defaults, --set parsing, and one-line errors for bad keys and values."""
import dataclasses

import pytest

from agents import ConfigError, get_agent
from suite.envs import get_family


def cfg(name="dqn", family="classic", **overrides):
    # the family-wide defaults come from the suite's family record
    return get_family(family).agent_config(get_agent(name).config_cls, overrides)


def test_family_defaults_follow_published_settings():
    classic, minatar, atari = cfg(), cfg(family="minatar"), cfg(family="atari")
    # CleanRL dqn.py
    assert (classic.learning_rate, classic.batch_size, classic.buffer_size, classic.learning_starts,
            classic.train_frequency, classic.target_period, classic.loss, classic.optimizer) == \
        (2.5e-4, 128, 10_000, 10_000, 10, 500, "mse", "adam")
    # MinAtar examples/dqn.py: target every 1000 updates at one update per frame
    assert (minatar.optimizer, minatar.optimizer_eps, minatar.batch_size, minatar.buffer_size,
            minatar.learning_starts, minatar.train_frequency, minatar.target_period, minatar.epsilon_end,
            minatar.epsilon_decay_steps, minatar.loss) == \
        ("rmsprop-centered", 0.01, 32, 100_000, 5000, 1, 1000, 0.1, 100_000, "huber")
    # Nature DQN: 10k updates × 4 env steps
    assert (atari.buffer_size, atari.train_frequency, atari.target_period, atari.learning_starts) == \
        (1_000_000, 4, 40_000, 50_000)


def test_overrides_are_typed():
    c = cfg(learning_rate="1e-3", hidden_sizes="64,64", max_grad_norm="10", loss="huber", buffer_size="1e5")
    assert c.learning_rate == 1e-3 and c.hidden_sizes == (64, 64) and c.max_grad_norm == 10.0
    assert c.loss == "huber" and c.buffer_size == 100_000
    assert cfg(max_grad_norm="none").max_grad_norm is None

def test_optimizer_fields_are_typed_and_default_off():
    c = cfg(optimizer="adamw", weight_decay="0.01", amsgrad="true", max_grad_value="100",
            epsilon_schedule="exponential-gap")
    assert (c.optimizer, c.weight_decay, c.amsgrad, c.max_grad_value, c.epsilon_schedule) == \
        ("adamw", 0.01, True, 100.0, "exponential-gap")
    # unset: torch's default decay for the optimizer, no AMSGrad, no value clipping
    assert (cfg().weight_decay, cfg().amsgrad, cfg().max_grad_value) == (None, False, None)
    assert cfg(optimizer="adam", amsgrad="true").amsgrad  # AMSGrad is Adam's option too


@pytest.mark.parametrize("overrides, fragment", [
    ({"learning_rate": "-1"}, "learning_rate=-1.0 is out of range; allowed: (0, inf)"),
    ({"learning_rate": "fast"}, "learning_rate='fast' is not valid; allowed: float"),
    ({"target_period": "0"}, "target_period=0 is out of range"),
    ({"gamma": "1.0"}, "gamma=1.0 is out of range; allowed: [0, 1)"),
    ({"batch_size": "20000"}, "batch_size=20000 is larger than buffer_size=10000"),
    ({"loss": "l1"}, "loss='l1' is not valid; allowed: mse | huber"),
    ({"train_frequency": "2.5"}, "train_frequency='2.5' is not valid; allowed: int"),
    ({"learning_rat": "1"}, "unknown config key 'learning_rat'"),
    ({"epsilon_end": "0.9", "epsilon_start": "0.5"}, "epsilon_end=0.9 is above epsilon_start=0.5"),
    ({"optimizer": "adamax"}, "optimizer='adamax' is not valid; allowed: adam | adamw | rmsprop-centered | sgd"),
    ({"weight_decay": "-0.01"}, "weight_decay=-0.01 is out of range; allowed: [0, inf)"),
    ({"amsgrad": "maybe"}, "amsgrad='maybe' is not valid; allowed: bool"),
    ({"optimizer": "sgd", "amsgrad": "true"}, "amsgrad=True is not valid with optimizer='sgd'; allowed: optimizer adam"),
    ({"max_grad_value": "0"}, "max_grad_value=0.0 is out of range; allowed: (0, inf)"),
    ({"max_grad_value": "-100"}, "max_grad_value=-100.0 is out of range; allowed: (0, inf)"),
    ({"epsilon_schedule": "cosine"}, "epsilon_schedule='cosine' is not valid; allowed: linear | exponential"),
])
def test_bad_values_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        cfg(**overrides)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_tau_range_on_soft_agent():
    with pytest.raises(ConfigError, match=r"tau=1.5 is out of range; allowed: \(0, 1\]"):
        cfg("dqn-soft", tau="1.5")
    assert cfg("dqn-soft", tau="1").tau == 1.0
    with pytest.raises(ConfigError, match="unknown config key 'tau'"):
        cfg("dqn", tau="0.1")  # the hard-target agent has no τ


def test_iterated_defaults_count_gradient_steps_and_follow_the_authors():
    """iS-QL's T and i-DQN's D, T are gradient steps; per-family values from the authors' launches (see the
    config docstrings); iS-QL's Atari setting is the authors' Atari launch script."""
    for name, key in (("isql", "shift_period"), ("idqn", "shift_period"), ("idqn", "sync_period")):
        field = next(f for f in dataclasses.fields(get_agent(name).config_cls) if f.name == key)
        assert "GRADIENT steps" in field.metadata["help"], (name, key)
    assert (cfg("isql").bellman_iterations, cfg("isql").shift_period, cfg("isql").layer_norm) == (3, 200, True)
    assert (cfg("idqn").bellman_iterations, cfg("idqn").sync_period, cfg("idqn").shift_period) == (3, 10, 200)
    assert cfg("isql", "minatar").shift_period == cfg("idqn", "minatar").shift_period == 1000
    atari = cfg("isql", "atari")
    assert (atari.bellman_iterations, atari.shift_period, atari.network, atari.layer_norm, atari.optimizer,
            atari.learning_rate, atari.optimizer_eps, atari.loss, atari.batch_size, atari.buffer_size,
            atari.train_frequency, atari.learning_starts, atari.epsilon_end, atari.epsilon_decay_steps) == \
        (9, 2000, "nature-cnn", True, "adam", 6.25e-5, 1.5e-4, "mse", 32, 1_000_000, 4, 20_000, 0.01, 250_000)
    # 2000 gradient steps at one every 4 env steps: the authors' T = 8000 env steps
    assert atari.shift_period * atari.train_frequency == 8000
    assert (cfg("idqn", "atari").sync_period, cfg("idqn", "atari").shift_period) == (8, 2000)
    assert (cfg("idqn", "tabular").sync_period, cfg("idqn", "tabular").shift_period) == (1, 200)


@pytest.mark.parametrize("family", ["classic", "minatar", "atari", "tabular"])
def test_idqn_uses_the_squared_loss_and_adam_on_every_family(family):
    """As the authors (optax.adam, jnp.square in theovincent/i-DQN), whatever the family's own DQN setting;
    on Atari also their learning rate and epsilon."""
    c = cfg("idqn", family)
    assert (c.loss, c.optimizer) == ("mse", "adam")
    if family == "atari":
        assert (c.learning_rate, c.optimizer_eps) == (6.25e-5, 1.5e-4)
    assert cfg("dqn", layer_norm="true").layer_norm is True and cfg("dqn").layer_norm is False
    with pytest.raises(ConfigError, match="layer_norm='maybe' is not valid; allowed: bool"):
        cfg("dqn", layer_norm="maybe")


def test_isql_refuses_weight_decay():
    """iS-QL's target head 0 is held fixed by its zero gradient alone; any decay would move it."""
    with pytest.raises(ConfigError, match=r"weight_decay=0.01 \(with optimizer='adamw'\) is not valid for isql"):
        cfg("isql", optimizer="adamw")  # AdamW's default decay
    with pytest.raises(ConfigError, match=r"weight_decay=0.1 \(with optimizer='adam'\) is not valid for isql"):
        cfg("isql", weight_decay="0.1")
    assert cfg("isql", optimizer="adamw", weight_decay="0", amsgrad="true").weight_decay == 0.0
