module fasts3example

go 1.21
