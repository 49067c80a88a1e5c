"""What things cost: prices, token usage, the money spent and the budget, estimates before a
run, the cost report, repricing past calls, and waiting for off-peak prices."""
