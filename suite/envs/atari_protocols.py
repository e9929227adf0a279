"""The Atari family's named evaluation protocols (``--set env.protocol=NAME``), as :class:`ProtocolPreset` data.

Each preset fixes the env options, the settings that define the published setting, and the score definition;
docs/protocols.md gives each one's source and what we could not match. ``default`` is TargetBench's own Atari
setting (ALE v5 dynamics, Nature DQN's agent settings, a final greedy evaluation): it fixes nothing and is
neutral for trial identity, so runs made before protocols existed keep their hashes.

Step counts are agent steps (``frame_skip`` emulator frames each), as everywhere in the Atari family.
"""
from __future__ import annotations

from typing import Any

from analysis.record_names import SCORE_FINAL_EVALUATION, SCORE_LAST_EPISODES, SCORE_PER_ITERATION
from suite.protocol import DEFAULT_SCORE, NOT_SCORED, ProtocolPreset

__all__ = ["DEFAULT_PROTOCOL", "PRESETS", "protocol_fields"]

DEFAULT_PROTOCOL = "default"

# Evaluation runs still happen under a protocol scored from training episodes, but they do not make the score:
# their settings are left out of its fingerprint so they cannot split otherwise equal runs.
_EVAL_NOT_SCORED = {"eval_every": NOT_SCORED, "eval_episodes": NOT_SCORED, "eval_epsilon": NOT_SCORED,
                    "eval_max_steps": NOT_SCORED}


_NATURE_PREPROCESSING = {"frame_skip": 4, "screen_size": 84, "frame_stack": 4, "grayscale": True,
                         "clip_rewards": True}

PRESETS: dict[str, ProtocolPreset] = {p.name: p for p in (
    ProtocolPreset(
        name=DEFAULT_PROTOCOL,
        title="TargetBench's Atari default",
        source="ALE v5 dynamics with Nature DQN's agent settings (the atari family's defaults)",
        score=DEFAULT_SCORE,
        fields={"score_kind": SCORE_FINAL_EVALUATION},
    ),
    ProtocolPreset(
        name="machado-2018",
        title="Revisiting the ALE (Machado et al. 2018)",
        source="Machado, Bellemare, Talvitie, Veness, Hausknecht, Bowling: Revisiting the Arcade Learning "
               "Environment, JAIR 61 (2018), arXiv 1709.06009",
        score="training returns: mean return of the last 100 training episodes that end within the budget",
        env={"repeat_action_probability": 0.25, "full_action_space": True, "terminal_on_life_loss": False,
             "noop_max": 0, "max_episode_steps": 27_000, "frame_skip": 4},
        train_defaults={"steps": 12_500_000, "eval_every": 250_000},
        fields={"score_kind": SCORE_LAST_EPISODES, "score_last_episodes": 100, **_EVAL_NOT_SCORED},
    ),
    ProtocolPreset(
        name="nature-2015",
        title="Nature DQN (Mnih et al. 2015)",
        source="Mnih et al.: Human-level control through deep reinforcement learning, Nature 518 (2015), Methods "
               "and Extended Data Table 1",
        score="final evaluation: mean return of 30 episodes of at most 18,000 frames with epsilon 0.05 after up "
              "to 30 no-op actions, whole games",
        env={**_NATURE_PREPROCESSING, "repeat_action_probability": 0.0, "full_action_space": False,
             "terminal_on_life_loss": True, "noop_max": 30},
        agent={"eval_epsilon": 0.05},
        train={"eval_episodes": 30, "eval_max_steps": 4_500},
        train_defaults={"steps": 12_500_000, "eval_every": 250_000},
        fields={"score_kind": SCORE_FINAL_EVALUATION},
    ),
    ProtocolPreset(
        name="dopamine",
        title="Dopamine's DQN baselines (Castro et al. 2018)",
        source="google/dopamine: dopamine/tf/agents/dqn/configs/dqn.gin, baselines/atari/README.md; Castro et al.: "
               "Dopamine, arXiv 1812.06110",
        score="training returns per iteration: mean return of the training episodes that end in each iteration "
              "of 250,000 agent steps (1M frames)",
        env={**_NATURE_PREPROCESSING, "repeat_action_probability": 0.25, "full_action_space": False,
             "terminal_on_life_loss": False, "noop_max": 0, "max_episode_steps": 27_000},
        # Dopamine's table of the settings it holds equal across its agents (baselines/atari/README.md).
        agent={"epsilon_schedule": "linear", "epsilon_start": 1.0, "epsilon_end": 0.01,
               "epsilon_decay_steps": 250_000, "learning_starts": 20_000, "eval_epsilon": 0.001,
               "target_period": 8_000},
        # DQN's own hyperparameters in dqn.gin (RMSProp as in TensorFlow's centered variant).
        agent_defaults={"optimizer": "rmsprop-centered", "learning_rate": 2.5e-4, "optimizer_eps": 1e-5,
                        "rmsprop_alpha": 0.95, "loss": "huber", "gamma": 0.99, "batch_size": 32,
                        "buffer_size": 1_000_000, "train_frequency": 4},
        train_defaults={"steps": 50_000_000, "eval_every": 250_000},
        fields={"score_kind": SCORE_PER_ITERATION, "score_iteration_steps": 250_000,
                **_EVAL_NOT_SCORED},
    ),
    ProtocolPreset(
        name="atari-100k",
        title="Atari 100k (Kaiser et al. 2020; as run by Agarwal et al. 2021)",
        source="Kaiser et al.: Model-Based Reinforcement Learning for Atari, ICLR 2020; Agarwal et al.: Deep RL at "
               "the Edge of the Statistical Precipice, NeurIPS 2021; google/dopamine dopamine/labs/atari_100k",
        score="final evaluation: mean return of 100 evaluation episodes after 100,000 agent steps (400k frames), "
              "epsilon 0.001, whole games",
        env={**_NATURE_PREPROCESSING, "repeat_action_probability": 0.0, "full_action_space": False,
             "terminal_on_life_loss": True, "noop_max": 0, "max_episode_steps": 27_000},
        agent={"eval_epsilon": 0.001},
        train={"eval_episodes": 100, "eval_max_steps": 27_000},
        # DrQ(epsilon)'s shared settings in Dopamine's atari_100k lab: the method's own, so only proposed.
        agent_defaults={"learning_starts": 1_600, "train_frequency": 1, "epsilon_end": 0.01,
                        "epsilon_decay_steps": 5_000, "optimizer": "adam", "learning_rate": 1e-4,
                        "optimizer_eps": 1.5e-4, "batch_size": 32, "buffer_size": 100_000},
        train_defaults={"steps": 100_000, "eval_every": 100_000},
        fields={"score_kind": SCORE_FINAL_EVALUATION},
    ),
)}


def protocol_fields(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """The Atari family's protocol fields (:func:`suite.protocol.protocol_of`): the step unit, and the selected
    protocol's score definition and extra fields."""
    preset = PRESETS[options.get("protocol", DEFAULT_PROTOCOL)]
    return {"step_unit": f"agent steps of {int(options['frame_skip'])} frames", "score": preset.score,
            **preset.fields}
