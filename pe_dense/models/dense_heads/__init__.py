"""Detection heads registered in MMDetection."""
