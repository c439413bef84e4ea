"""Readers of the benchmark formats (pairs.txt, HPatches, WxBS, webcam timelapses, places folders,
Nordland): the one owner for training validation, export parity and the evaluation tool."""
