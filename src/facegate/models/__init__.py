"""Small model files that facegate itself ships (calibration, spoof detector); see the cards."""
