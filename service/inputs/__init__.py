"""Input decoders for the models' own kinds of input: image files, JSON image arrays and
tabular records, each into a checked float32 array or a clear client error."""
