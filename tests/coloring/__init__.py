"""Tests of stage 2: coloring."""
