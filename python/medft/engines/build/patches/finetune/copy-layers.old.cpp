// Train / Finetune a model.
