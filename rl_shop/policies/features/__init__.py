"""The single featurizer per environment: dialogue / belief / schedule state -> observation vector.

The Gymnasium envs and the runtime agents call the same functions here ("One shopper, two faces"
in docs/ARCHITECTURE.md). Each module defines ``LAYOUT_VERSION``; exported policy cards record it so that a
policy trained on one observation layout refuses to run on another.
"""
