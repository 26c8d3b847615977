"""training: PubMed Central corpus preparation, continued pretraining and LoRA SFT."""
