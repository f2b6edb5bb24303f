"""cnc: real CNC sensor recordings → the G-code line being executed, evaluated without leaks.

Modules: :mod:`~physml.cnc.schema` (column vocabulary), :mod:`~physml.cnc.data` (loader and
shipped copy), :mod:`~physml.cnc.build_data` (builds ``data/cnc``), :mod:`~physml.cnc.tokens`
(G-code tokenizer, programs, command classes), :mod:`~physml.cnc.features` (the one gate to
model inputs), :mod:`~physml.cnc.baselines` (majority, clock, window statistics, 1-NN),
:mod:`~physml.cnc.audit` (tables and figures of the data audit), :mod:`~physml.cnc.leakage` (the
source's random window split, only to measure its leak), :mod:`~physml.cnc.alignment`
(left-to-right Viterbi over a known program; begun).
Nothing here changes global state at import.
"""
