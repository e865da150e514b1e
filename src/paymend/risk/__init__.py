"""Risk control: rules as data, velocity, behaviour scores and the decision before routing."""
