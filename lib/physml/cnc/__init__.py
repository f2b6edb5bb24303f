"""cnc: real CNC sensor recordings → the G-code line being executed, evaluated without leaks.

Data and vocabulary: :mod:`~physml.cnc.schema` (column vocabulary), :mod:`~physml.cnc.data`
(loader and shipped copy), :mod:`~physml.cnc.build_data` (builds ``data/cnc``),
:mod:`~physml.cnc.tokens` (G-code tokenizer, programs, command classes),
:mod:`~physml.cnc.features` (the one gate to model inputs), :mod:`~physml.cnc.synthetic`
(synthetic recordings in the loader's layout, for tests).

Evaluation protocol: :mod:`~physml.cnc.leakage` (the source's random window split, only to
measure its leak), :mod:`~physml.cnc.leaky` (the source's protocol, reproduced by name),
:mod:`~physml.cnc.audit` (data-audit tables and figures).

Models: :mod:`~physml.cnc.baselines` (majority, clock, window statistics, 1-NN, motion features),
:mod:`~physml.cnc.motion` (centred window statistics and rotation sense for the command class),
:mod:`~physml.cnc.sequences` (windows and token targets), :mod:`~physml.cnc.classifier` (1-D CNN
command classifier), :mod:`~physml.cnc.encoder_decoder` (BiLSTM encoder, transformer decoder),
:mod:`~physml.cnc.focal` (focal loss), :mod:`~physml.cnc.ablation` (focal and modality sweeps),
:mod:`~physml.cnc.onnx_export`; the hybrid: :mod:`~physml.cnc.kinematics` (line durations from
the G-code), :mod:`~physml.cnc.alignment` (Viterbi kernels), :mod:`~physml.cnc.hybrid`
(alignment to the known programs); :mod:`~physml.cnc.damage` (tool damage vs session).

:func:`evaluate` (module :mod:`~physml.cnc.evaluation`) scores a saved model on recordings in the
original CSV layout; ``physml cnc evaluate MODEL_DIR FILE...`` is its command line.
Nothing here changes global state at import.
"""

from .evaluation import evaluate

__all__ = ["evaluate"]
