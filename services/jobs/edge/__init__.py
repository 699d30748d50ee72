"""The jobs service's HTTP edge: what gRPC transcoding cannot carry (multipart forms, binary answers, calls that
wait for their job), served beside the gRPC server in the same process and over the same domain objects."""
