"""People's pictures → MNIST-style 28×28 digits: decoding any picture, one `preprocess()`,
and cutting a picture of a number into its digits.
"""
