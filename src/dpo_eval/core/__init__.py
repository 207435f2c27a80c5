"""Foundations every stage uses: study constants, typed settings, configuration, errors,
file output, the codebook, the institution registry and the data dictionary."""
