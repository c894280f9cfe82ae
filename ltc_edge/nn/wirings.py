"""Wirings: which neuron talks to which, and with what polarity.

The generators draw random numbers in exactly the order ncps does (ncps.wirings,
Apache-2.0, Lechner & Hasani), so the same arguments and seed give the same adjacency
matrices. Only numpy is needed here: the runtime uses wirings too.

adjacency[src, dest] and sensory_adjacency[src, dest] hold +1 (excitatory), -1
(inhibitory) or 0 (no synapse).
"""

from __future__ import annotations

import numpy as np


class Wiring:
    kind = "custom"

    def __init__(self, units: int, output_dim: int | None = None):
        if int(units) < 1:
            raise ValueError(f"a wiring needs at least one neuron, got units={units}")
        self.units = int(units)
        self.adjacency_matrix = np.zeros([self.units, self.units], dtype=np.int32)
        self.sensory_adjacency_matrix = None
        self.input_dim = None
        self.output_dim = self.units if output_dim is None else int(output_dim)
        if not 1 <= self.output_dim <= self.units:
            raise ValueError(f"output_dim must be in 1..{self.units}, got {self.output_dim}")
        self.args: dict = {}

    # -- structure -----------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return 1

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return list(range(self.units))

    @property
    def layers(self) -> list[list[int]]:
        return [list(self.get_neurons_of_layer(i)) for i in range(self.num_layers)]

    def get_type_of_neuron(self, neuron_id: int) -> str:
        return "motor" if neuron_id < self.output_dim else "inter"

    def is_built(self) -> bool:
        return self.input_dim is not None

    def build(self, input_dim: int) -> "Wiring":
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"wiring was built for {self.input_dim} inputs, cannot rebuild for {input_dim}"
            )
        if self.input_dim is None:
            self.input_dim = int(input_dim)
            self.sensory_adjacency_matrix = np.zeros([self.input_dim, self.units], dtype=np.int32)
            self._build_sensory()
        return self

    def _build_sensory(self) -> None:  # subclasses draw their sensory synapses here
        pass

    def add_synapse(self, src: int, dest: int, polarity: int) -> None:
        if not (0 <= src < self.units and 0 <= dest < self.units):
            raise ValueError(f"synapse {src}->{dest} outside 0..{self.units - 1}")
        if polarity not in (-1, 1):
            raise ValueError(f"polarity must be -1 or +1, got {polarity}")
        self.adjacency_matrix[src, dest] = polarity

    def add_sensory_synapse(self, src: int, dest: int, polarity: int) -> None:
        if self.input_dim is None:
            raise ValueError("cannot add sensory synapses before build(input_dim)")
        if not (0 <= src < self.input_dim and 0 <= dest < self.units):
            raise ValueError(f"sensory synapse {src}->{dest} out of range")
        if polarity not in (-1, 1):
            raise ValueError(f"polarity must be -1 or +1, got {polarity}")
        self.sensory_adjacency_matrix[src, dest] = polarity

    # -- counts --------------------------------------------------------------------
    @property
    def synapse_count(self) -> int:
        return int(np.abs(self.adjacency_matrix).sum())

    @property
    def sensory_synapse_count(self) -> int:
        if self.sensory_adjacency_matrix is None:
            return 0
        return int(np.abs(self.sensory_adjacency_matrix).sum())

    def erev_initializer(self) -> np.ndarray:
        return np.copy(self.adjacency_matrix)

    def sensory_erev_initializer(self) -> np.ndarray:
        return np.copy(self.sensory_adjacency_matrix)

    # -- (de)serialisation -----------------------------------------------------------
    def to_config(self) -> dict:
        if not self.is_built():
            raise ValueError("wiring is not built: call build(input_dim) first")
        return {
            "kind": self.kind,
            "args": dict(self.args),
            "units": self.units,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "layers": self.layers,
            "neuron_types": [self.get_type_of_neuron(i) for i in range(self.units)],
            "adjacency": self.adjacency_matrix.tolist(),
            "sensory_adjacency": self.sensory_adjacency_matrix.tolist(),
        }


class StoredWiring(Wiring):
    """A wiring rebuilt from saved matrices (no random draws)."""

    def __init__(self, config: dict):
        super().__init__(config["units"], config["output_dim"])
        self.kind = config.get("kind", "custom")
        self.args = dict(config.get("args", {}))
        adj = np.asarray(config["adjacency"], dtype=np.int32)
        sadj = np.asarray(config["sensory_adjacency"], dtype=np.int32)
        if adj.shape != (self.units, self.units):
            raise ValueError(f"adjacency has shape {adj.shape}, expected {(self.units, self.units)}")
        if sadj.shape != (config["input_dim"], self.units):
            raise ValueError(f"sensory adjacency has shape {sadj.shape}, expected "
                             f"{(config['input_dim'], self.units)}")
        if not (np.isin(adj, (-1, 0, 1)).all() and np.isin(sadj, (-1, 0, 1)).all()):
            raise ValueError("adjacency entries must be -1, 0 or +1")
        self.adjacency_matrix = adj
        self.sensory_adjacency_matrix = sadj
        self.input_dim = int(config["input_dim"])
        self._layers = [list(map(int, layer)) for layer in config.get("layers") or [list(range(self.units))]]
        self._types = list(config.get("neuron_types") or
                           ["motor" if i < self.output_dim else "inter" for i in range(self.units)])

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return self._layers[layer_id]

    def get_type_of_neuron(self, neuron_id: int) -> str:
        return self._types[neuron_id]


class FullyConnected(Wiring):
    kind = "full"

    def __init__(self, units, output_dim=None, erev_init_seed=1111, self_connections=True):
        super().__init__(units, output_dim)
        self.args = {"units": self.units, "output_dim": self.output_dim,
                     "erev_init_seed": erev_init_seed, "self_connections": self_connections}
        self._rng = np.random.default_rng(erev_init_seed)
        for src in range(self.units):
            for dest in range(self.units):
                if src == dest and not self_connections:
                    continue
                self.add_synapse(src, dest, self._rng.choice([-1, 1, 1]))

    def _build_sensory(self):
        for src in range(self.input_dim):
            for dest in range(self.units):
                self.add_sensory_synapse(src, dest, self._rng.choice([-1, 1, 1]))


class Random(Wiring):
    kind = "random"

    def __init__(self, units, output_dim=None, sparsity_level=0.0, random_seed=1111):
        super().__init__(units, output_dim)
        if not 0.0 <= sparsity_level < 1.0:
            raise ValueError(f"sparsity_level must be in [0, 1), got {sparsity_level}")
        self.sparsity_level = sparsity_level
        self.args = {"units": self.units, "output_dim": self.output_dim,
                     "sparsity_level": sparsity_level, "random_seed": random_seed}
        self._rng = np.random.default_rng(random_seed)
        n = int(np.round(self.units * self.units * (1 - sparsity_level)))
        pairs = [(s, d) for s in range(self.units) for d in range(self.units)]
        for src, dest in self._rng.choice(pairs, size=n, replace=False):
            self.add_synapse(src, dest, self._rng.choice([-1, 1, 1]))

    def _build_sensory(self):
        n = int(np.round(self.input_dim * self.units * (1 - self.sparsity_level)))
        pairs = [(s, d) for s in range(self.input_dim) for d in range(self.units)]
        for src, dest in self._rng.choice(pairs, size=n, replace=False):
            # ncps draws the polarity twice and keeps the second; we follow it so the
            # random stream (and so the matrices) stay identical.
            self.add_sensory_synapse(src, dest, self._rng.choice([-1, 1, 1]))
            self.add_sensory_synapse(src, dest, self._rng.choice([-1, 1, 1]))


class NCP(Wiring):
    """Neural Circuit Policy: sensory -> inter -> command (recurrent) -> motor.

    Neuron ids: motor neurons first, then command, then inter neurons (as ncps).
    """

    kind = "ncp"

    def __init__(self, inter_neurons, command_neurons, motor_neurons, sensory_fanout,
                 inter_fanout, recurrent_command_synapses, motor_fanin, seed=22222):
        super().__init__(inter_neurons + command_neurons + motor_neurons, motor_neurons)
        self.args = {"inter_neurons": inter_neurons, "command_neurons": command_neurons,
                     "motor_neurons": motor_neurons, "sensory_fanout": sensory_fanout,
                     "inter_fanout": inter_fanout,
                     "recurrent_command_synapses": recurrent_command_synapses,
                     "motor_fanin": motor_fanin, "seed": seed}
        self._rng = np.random.RandomState(seed)
        self._num_inter, self._num_command, self._num_motor = inter_neurons, command_neurons, motor_neurons
        self._sensory_fanout, self._inter_fanout = sensory_fanout, inter_fanout
        self._recurrent_command_synapses, self._motor_fanin = recurrent_command_synapses, motor_fanin
        self._motor_neurons = list(range(0, motor_neurons))
        self._command_neurons = list(range(motor_neurons, motor_neurons + command_neurons))
        self._inter_neurons = list(range(motor_neurons + command_neurons, self.units))
        if motor_fanin > command_neurons:
            raise ValueError(f"motor_fanin is {motor_fanin} but there are only {command_neurons} command neurons")
        if sensory_fanout > inter_neurons:
            raise ValueError(f"sensory_fanout is {sensory_fanout} but there are only {inter_neurons} inter neurons")
        if inter_fanout > command_neurons:
            raise ValueError(f"inter_fanout is {inter_fanout} but there are only {command_neurons} command neurons")

    @property
    def num_layers(self):
        return 3

    def get_neurons_of_layer(self, layer_id):
        return [self._inter_neurons, self._command_neurons, self._motor_neurons][layer_id]

    def get_type_of_neuron(self, neuron_id):
        if neuron_id < self._num_motor:
            return "motor"
        if neuron_id < self._num_motor + self._num_command:
            return "command"
        return "inter"

    def _connect(self, sources, targets, fanout, fanin_cap, add):
        """Each source gets `fanout` random targets; unreached targets get mean fan-in sources.

        ncps caps that fan-in by the sensory count for sensory->inter but by the command
        count for inter->command; `fanin_cap` keeps both quirks.
        """
        unreached = list(targets)
        for src in sources:
            for dest in self._rng.choice(targets, size=fanout, replace=False):
                if dest in unreached:
                    unreached.remove(dest)
                add(src, dest, self._rng.choice([-1, 1]))
        fanin = int(np.clip(int(len(sources) * fanout / len(targets)), 1, fanin_cap))
        for dest in unreached:
            for src in self._rng.choice(sources, size=fanin, replace=False):
                add(src, dest, self._rng.choice([-1, 1]))

    def _build_sensory(self):
        sensory = list(range(self.input_dim))
        self._connect(sensory, self._inter_neurons, self._sensory_fanout, len(sensory),
                      self.add_sensory_synapse)
        self._connect(self._inter_neurons, self._command_neurons, self._inter_fanout,
                      self._num_command, self.add_synapse)
        for _ in range(self._recurrent_command_synapses):
            src = self._rng.choice(self._command_neurons)
            dest = self._rng.choice(self._command_neurons)
            self.add_synapse(src, dest, self._rng.choice([-1, 1]))
        # command -> motor is drawn per motor neuron (fan-in), then unreached command
        # neurons get outgoing synapses; ncps clips that fan-out by the motor count.
        unreached = list(self._command_neurons)
        for dest in self._motor_neurons:
            for src in self._rng.choice(self._command_neurons, size=self._motor_fanin, replace=False):
                if src in unreached:
                    unreached.remove(src)
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))
        fanout = int(np.clip(int(self._num_motor * self._motor_fanin / self._num_command), 1, self._num_motor))
        for src in unreached:
            for dest in self._rng.choice(self._motor_neurons, size=fanout, replace=False):
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))


class AutoNCP(NCP):
    kind = "auto-ncp"

    def __init__(self, units, output_size, sparsity_level=0.5, seed=22222):
        if output_size >= units - 2:
            raise ValueError(f"output_size must be less than units-2 (got {units} units, {output_size} outputs)")
        if not 0.1 <= sparsity_level <= 1.0:
            raise ValueError(f"sparsity_level must be between 0.1 and 1.0, got {sparsity_level}")
        density = 1.0 - sparsity_level
        inter_and_command = units - output_size
        command = max(int(0.4 * inter_and_command), 1)
        inter = inter_and_command - command
        super().__init__(inter, command, output_size,
                         sensory_fanout=max(int(inter * density), 1),
                         inter_fanout=max(int(command * density), 1),
                         recurrent_command_synapses=max(int(command * density * 2), 1),
                         motor_fanin=max(int(command * density), 1), seed=seed)
        self.args = {"units": units, "output_size": output_size,
                     "sparsity_level": sparsity_level, "seed": seed}


WIRINGS = {"full": FullyConnected, "random": Random, "ncp": NCP, "auto-ncp": AutoNCP}


def make_wiring(kind: str, input_dim: int, **args) -> Wiring:
    """Build a wiring by registry name, e.g. make_wiring("auto-ncp", 8, units=19, output_size=4)."""
    if kind not in WIRINGS:
        raise ValueError(f"unknown wiring {kind!r}; choose one of {', '.join(WIRINGS)}")
    return WIRINGS[kind](**args).build(input_dim)


def wiring_from_config(config: dict) -> StoredWiring:
    return StoredWiring(config)
