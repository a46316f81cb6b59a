"""Running the jwst calibration pipeline on the inputs, offline."""
