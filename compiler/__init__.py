"""The compiler: rule loading, the pipeline language, semantic analysis, the IR and its passes."""
