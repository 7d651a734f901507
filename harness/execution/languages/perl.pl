# evalboard's call channel for Perl (see runtimes.py). Both sides are Perl: the program's (it answers
# calls of its function) and the trusted checker's (the benchmark's tests, whose entry point is a
# proxy). One JSON array per line (bytes as Latin-1 characters, so strings come back byte for byte);
# values tagged: ["n"] undef, ["d", "number"], ["s", string], ["a", [...]], ["h", [[key, value], ...]];
# an answer is the list the function returned in list context, ["l", [...]].
{
    package EvalboardCall;
    use strict;
    use warnings;
    require B;
    require JSON::PP;
    require POSIX;

    my $json = JSON::PP->new->latin1;
    my $number = qr/\A[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?|nan)\z/i;

    sub encode {
        my ($v) = @_;
        return ["n"] unless defined $v;
        my $kind = ref $v;
        return ["a", [map { encode($_) } @$v]] if $kind eq "ARRAY";
        return ["h", [map { [["s", $_], encode($v->{$_})] } sort keys %$v]] if $kind eq "HASH";
        die "a $kind reference is not plain data\n" if $kind;
        my $flags = B::svref_2object(\$v)->FLAGS;
        if (($flags & (B::SVp_IOK() | B::SVp_NOK())) && !($flags & B::SVp_POK())) {
            return ["d", ($flags & B::SVp_NOK()) ? sprintf("%.17g", $v) : "$v"];
        }
        return ["s", "$v"];
    }

    sub decode {
        my ($m) = @_;
        die "not a value\n" unless ref $m eq "ARRAY" && defined $m->[0] && !ref $m->[0];
        my ($tag, $body) = @$m;
        return undef if $tag eq "n";
        if (defined $body && !ref $body) {
            return "$body" if $tag eq "s";
            return 0 + $body if $tag eq "d" && $body =~ $number;
        }
        if (ref $body eq "ARRAY") {
            return [map { decode($_) } @$body] if $tag eq "a" || $tag eq "l";
            if ($tag eq "h") {
                my %hash;
                for my $pair (@$body) {
                    die "a malformed hash\n" unless ref $pair eq "ARRAY" && @$pair == 2;
                    my $key = decode($pair->[0]);
                    die "a bad hash key\n" unless defined $key && !ref $key;
                    $hash{$key} = decode($pair->[1]);
                }
                return \%hash;
            }
        }
        die "not a value\n";
    }

    my ($input, $output);
    sub channel {
        unless ($input) {
            open($input, "<&=", 3) or die "fd 3: $!\n";
            open($output, ">&=", 4) or die "fd 4: $!\n";
            binmode($input);
            binmode($output);
            $output->autoflush(1);
        }
    }

    sub receive {
        channel();
        my $line = readline($input);
        return undef unless defined $line;
        chomp $line;
        return $json->decode($line);
    }

    sub send_message {
        channel();
        print {$output} $json->encode($_[0]), "\n";
    }

    # The program's side: answer calls of the sub `main::NAME` until the checker closes the channel.
    sub serve {
        my ($name) = @_;
        my $entry = do { no strict "refs"; defined &{"main::$name"} ? \&{"main::$name"} : undef };
        unless ($entry) { send_message(["error", "$name is not a sub"]); return; }
        send_message(["ready"]);
        while (defined(my $call = receive())) {
            my @args = map { decode($_) } @{$call->[1]};
            my @result;
            unless (eval { @result = $entry->(@args); 1 }) {
                my $error = "$@";
                chomp $error;
                send_message(["raised", $error]);
                next;
            }
            my $reply = eval { ["ok", ["l", [map { encode($_) } @result]]] };
            send_message($reply || ["error", "the function returned " . "$@"]);
        }
    }

    # The checker's side (trusted): anything but a well-formed answer ends the tests as failed.
    sub fail {
        print STDERR "CandidateFailed: $_[0]\n";
        POSIX::_exit(1);
    }

    sub answer {
        my $m = eval { receive() };
        fail("a malformed message") if $@;
        fail("the program ended before answering") unless defined $m;
        fail("a malformed message") unless ref $m eq "ARRAY" && defined $m->[0] && !ref $m->[0];
        return $m;
    }

    sub expect_ready {
        my $m = answer();
        fail($m->[0] eq "error" ? "" . ($m->[1] // "") : "the program did not load") unless $m->[0] eq "ready";
    }

    sub call {
        send_message(["call", [map { encode($_) } @_]]);
        my $m = answer();
        fail("CandidateRaised: " . ($m->[1] // "")) if $m->[0] eq "raised";
        fail($m->[0] eq "error" ? "" . ($m->[1] // "") : "a malformed message") unless $m->[0] eq "ok";
        fail("a malformed answer") unless ref $m->[1] eq "ARRAY" && ($m->[1][0] // "") eq "l";
        my $values = eval { decode($m->[1]) };
        fail("$@") if $@;
        return wantarray ? @$values : $values->[-1];
    }
}
