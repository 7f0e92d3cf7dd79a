import { Injectable } from '@nestjs/common';

/** The time, behind an injectable seam so tests can fix it. */
@Injectable()
export class ClockRepository {
  now(): number {
    return Date.now();
  }
}
