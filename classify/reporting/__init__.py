"""The corpus report: what a tagged corpus says, with prevalence corrected for the model's errors.

``corpus`` reads tag outputs into label matrices and time buckets; ``heldout`` reads the model's
held-out gold predictions; ``quantify`` turns both into corrected shares with intervals (QuaPy's
adjusted counting); ``drift`` says where those error rates may not hold; ``evidence`` picks quotable
paragraphs; ``build`` computes every number once and ``render`` lays them out as HTML and Markdown.
"""
