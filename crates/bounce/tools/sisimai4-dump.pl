#!/usr/bin/perl
# Runs Sisimai 4 (Debian's libsisimai-perl) over every message of a corpus
# folder and prints one JSON object per file on stdout:
#   {"file":"x.eml","results":[{"recipient":..,"reason":..,"status":..,
#     "hardbounce":..,"feedbacktype":..,"replycode":..,"action":..}, ...]}
# bounce-score --sisimai <that output> scores it against the same labels as
# tidings, in the same way.
#
# usage: perl sisimai4-dump.pl <corpus-dir> > sisimai4.jsonl
#   (corpus-dir holds sisimai-dev/ and flufl/)
use strict;
use warnings;
use Sisimai;
use JSON::PP;

my $root = shift or die "usage: $0 <corpus-dir>\n";
my $json = JSON::PP->new->canonical(1);
for my $set ('sisimai-dev', 'flufl') {
    my $dir = "$root/$set";
    next unless -d $dir;
    opendir(my $dh, $dir) or die "$dir: $!";
    for my $name (sort grep { -f "$dir/$_" } readdir $dh) {
        my $rows = [];
        my $list = eval { Sisimai->make("$dir/$name", 'delivered' => 1) } || [];
        for my $e (@$list) {
            push @$rows, {
                'recipient'    => $e->recipient ? $e->recipient->address : '',
                'reason'       => $e->reason // '',
                'status'       => $e->deliverystatus // '',
                # Sisimai 4 has softbounce (1 soft, 0 hard, -1 n/a) instead of hardbounce.
                'hardbounce'   => (($e->softbounce // -1) == 0) ? JSON::PP::true : JSON::PP::false,
                'feedbacktype' => $e->feedbacktype // '',
                'replycode'    => $e->replycode // '',
                'action'       => $e->action // '',
            };
        }
        print $json->encode({ 'set' => $set, 'file' => $name, 'results' => $rows }), "\n";
    }
    closedir $dh;
}
